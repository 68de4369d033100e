"""Using a trained model: ``analyze`` new recordings, ``export`` it to the stacks people serve
with, ``serve`` it over HTTP. Everything here reads what the recipe wrote (a run folder, ``final/``,
``best/``) and never trains."""
