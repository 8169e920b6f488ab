"""Small tweaks that keep a Locust process fast with many users, each saying why and until when."""
