"""The sync engine: runs that read a company's books through its system module and never get stuck."""
