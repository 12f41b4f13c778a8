"""Importers: files on disk -> validated, atomic store writes. ``import_path`` picks the importer per file."""

from pivotal.data.importers.base import ImportFormatError, UnsupportedFile
from pivotal.data.importers.dispatch import FORMATS, FileResult, ImportOptions, ImportReport, import_file, import_path

__all__ = [
    "FORMATS",
    "FileResult",
    "ImportFormatError",
    "ImportOptions",
    "ImportReport",
    "UnsupportedFile",
    "import_file",
    "import_path",
]
