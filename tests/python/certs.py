"""Throw-away certificates for the TLS tests, made with Debian's openssl at test time (never
checked in): a CA, a server certificate for 127.0.0.1 and localhost, and client certificates
with chosen subjects. EC P-256 keys, valid for two days."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass
class Issued:
    cert: Path
    key: Path
    # The key, then the certificate: one PEM file, as ssl.keystore.location takes it.
    keystore: Path


class Authority:
    """A CA that issues certificates into `folder`."""

    def __init__(self, folder: Path, name: str = "brook test CA"):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.slug = name.replace(" ", "-")
        self.key = folder / f"{self.slug}.key"
        self.cert = folder / f"{self.slug}.pem"
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(self.key), "-out", str(self.cert), "-days", "2",
                 "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
        self.serial = 0

    def issue(self, subject: str, hosts: tuple[str, ...] = ()) -> Issued:
        """A certificate for `subject` (OpenSSL's /CN=x/O=y form), usable as a server (for
        `hosts`) and as a client."""
        self.serial += 1
        stem = f"{self.slug}-{self.serial}"
        key, csr, cert = (self.folder / f"{stem}.{ext}" for ext in ("key", "csr", "pem"))
        ext = self.folder / f"{stem}.ext"
        lines = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature",
                 "extendedKeyUsage=serverAuth,clientAuth"]
        if hosts:
            sans = [f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts]
            lines.append("subjectAltName=" + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(key), "-out", str(csr), "-subj", subject, cwd=self.folder)
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-set_serial", str(1000 + self.serial), "-out", str(cert), "-days", "2",
                 "-extfile", str(ext), cwd=self.folder)
        keystore = self.folder / f"{stem}.keystore.pem"
        keystore.write_text(key.read_text() + cert.read_text())
        return Issued(cert=cert, key=key, keystore=keystore)

    def server(self) -> Issued:
        return self.issue("/CN=localhost/O=brook", ("127.0.0.1", "localhost"))
