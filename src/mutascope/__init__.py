"""mutascope: map what the parameters of a large language model do."""

__version__ = "0.1.0"
