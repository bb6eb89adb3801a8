"""The aiohttp side: the talking page's app (``app.create_app``), who may use it, the pages'
event sockets, static files, and the plain-HTTP setup site."""
