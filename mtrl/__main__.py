from mtrl.cli import main

main()
