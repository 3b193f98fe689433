from leadflow.cli import main

main()
