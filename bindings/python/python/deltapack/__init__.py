"""deltapack: check, download, apply and install updates from a signed
deltapack repository, from Python.

    import deltapack
    u = deltapack.Updater(repository="https://updates.example.com/myapp/",
                          public_key=open("release.pub").read(),
                          platform="linux-x86_64", install_dir="/opt/myapp")
    u.update(progress=print)

Long calls release the GIL; ``progress`` callbacks are called with the GIL
held, with one dict per event (``{"kind": "downloading", ...}``). Every
failure raises a subclass of :class:`deltapack.Error` whose ``code`` names
the exact cause.
"""

from ._deltapack import (
    BusyError,
    ConfigError,
    DiskError,
    Downloaded,
    Error,
    LayoutError,
    NetworkError,
    PackageError,
    SignatureError,
    Staged,
    UnavailableError,
    Update,
    Updater,
)

__all__ = [
    "BusyError",
    "ConfigError",
    "DiskError",
    "Downloaded",
    "Error",
    "LayoutError",
    "NetworkError",
    "PackageError",
    "SignatureError",
    "Staged",
    "UnavailableError",
    "Update",
    "Updater",
]
