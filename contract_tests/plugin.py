"""pytest plugin entry point (``pytest11``). Imported in every pytest run of every user: keep it cheap."""
