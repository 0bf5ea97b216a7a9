from practicum.cli import main

main()
