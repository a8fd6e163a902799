from agentmark_gateway.cli.main import app

app()
