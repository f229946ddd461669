"""Study: specs, search spaces, Ray Tune launch and the `gloss` command."""
