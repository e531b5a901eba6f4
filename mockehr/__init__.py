"""mockehr: a SMART on FHIR EHR for laptops and test suites."""

__version__ = "0.1.0"

__all__ = ["MockEHR", "__version__"]


def __getattr__(name: str):
    """`from mockehr import MockEHR` loads the API (and Flask) only when asked: `import mockehr`
    stays light for the CLI and the pytest plugin, which every pytest session loads."""
    if name == "MockEHR":
        from mockehr.api import MockEHR
        return MockEHR
    raise AttributeError(f"module 'mockehr' has no attribute {name!r}")
