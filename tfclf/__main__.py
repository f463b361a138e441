from tfclf.cli import run

run()
