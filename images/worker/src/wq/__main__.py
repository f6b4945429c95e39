from wq.cli import main

main()
