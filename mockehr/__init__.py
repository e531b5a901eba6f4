"""mockehr: a SMART on FHIR EHR for laptops and test suites."""

__version__ = "0.1.0"
