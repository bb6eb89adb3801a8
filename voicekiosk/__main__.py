from voicekiosk.cli import cli

cli()
