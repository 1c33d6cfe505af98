"""`python -m kafka_compat.cli`: the `kafka-compat` command where its script is not on hand."""

from kafka_compat.cli.main import main

main()
