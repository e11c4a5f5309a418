from chaos_cli.app import main

main()
