"""The viewer web app: sign-in, profiles, home rows, title pages, the player and its events."""
