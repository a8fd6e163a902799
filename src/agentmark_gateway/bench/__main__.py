from agentmark_gateway.bench.cli import main

main()
