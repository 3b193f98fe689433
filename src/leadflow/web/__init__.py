"""The pages for people: the landing page and the API docs, all served by this process."""
