"""The project's ``agentmark.json`` as published with the templates, and its score configs."""
