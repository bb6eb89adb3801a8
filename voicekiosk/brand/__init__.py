"""A venue's look: the config file's ``[brand]`` table, its contrast check and its stylesheet."""
