"""The version of mutascope, recorded in every results file and export it writes.

Its own module, so that code deep in the package (a screen's ``runs`` row,
the phenotype and super-weight tables) can name it without importing the
package ``__init__``, which sits above everything.
"""

__version__ = "0.1.0"
