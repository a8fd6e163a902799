from pathlib import Path

from agentmark_gateway.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_names_every_setting():
    text = README.read_text()
    missing = [
        f"AGENTMARK_{name.upper()}"
        for name in Settings.model_fields
        if f"`AGENTMARK_{name.upper()}`" not in text
    ]
    assert not missing, f"document these settings in README.md: {missing}"
