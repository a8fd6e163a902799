"""The benchmark anyone can rerun: ``python -m agentmark_gateway.bench`` (or ``scripts/bench``).

It starts real servers with the production uvicorn settings on a fresh database,
drives them with wrk (and a small Python generator for trace ingest, where every
acknowledged span is counted back from the database), and writes a table to
``bench-results/``. Nothing here is imported by the gateway itself.
"""
