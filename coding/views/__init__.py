"""Views of the coding app, one module per area of the data flow."""
