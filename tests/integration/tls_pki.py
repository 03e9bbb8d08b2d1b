"""A throw-away PKI for the TLS tests, made with the `openssl` command line:
a root CA, an intermediate CA, and server certificates (RSA and ECDSA) for a
few names, plus an expired one. `curl --cacert`, `openssl s_client -CAfile`
and Python's ssl module all trust `ca.crt`.

    pki = Pki(directory)          # builds everything once (about a second)
    pki.cert("a.test")            # (crt path, key path) of the RSA leaf
    pki.cert("a.test", "ec")      # ECDSA leaf for the same name
    pki.chain_cert                # d.test: leaf + intermediate in one file
    pki.expired                   # e.test, valid Jan 2020 only

    cp = ClientPki(directory)     # client certificates (mTLS), their CA and a CRL
    cp.ca, cp.crl                 # the client CA; a CRL revoking cp.revoked
    cp.good, cp.revoked           # (crt, key) signed by the client CA
    cp.stranger                   # signed by another CA
    cp.self_signed                # its own issuer
    cp.chained                    # (leaf + intermediate, key): a chain of depth 2
    cp.good_enc_key               # cp.good's key encrypted with ClientPki.PASSWORD
"""

from __future__ import annotations

import subprocess
from pathlib import Path

CA_CNF = """\
[ca]
default_ca = d
[d]
dir = .
database = index.txt
serial = serial
new_certs_dir = .
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
crlnumber = crlnumber
default_crl_days = 30
[p]
commonName = supplied
organizationName = optional
"""

NAMES = ("a.test", "b.test", "c.test")


class Pki:
    def __init__(self, d: Path):
        self.d = Path(d)
        self.d.mkdir(parents=True, exist_ok=True)
        (self.d / "index.txt").write_text("")
        (self.d / "serial").write_text("1000\n")
        (self.d / "ca.cnf").write_text(CA_CNF)
        (self.d / "crlnumber").write_text("01\n")
        self.ca = self.d / "ca.crt"
        self._ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                   "-out", "ca.crt", "-subj", "/CN=Switchyard Test Root CA", "-days", "30",
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.certs: dict[tuple[str, str], tuple[Path, Path]] = {}
        for name in NAMES:
            self.certs[(name, "rsa")] = self._leaf(name, "rsa")
        self.certs[("a.test", "ec")] = self._leaf("a.test", "ec")
        # an intermediate CA and a leaf it signs; the file holds leaf + intermediate
        self._csr("inter", "Switchyard Test Intermediate", "rsa",
                  ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"])
        self._sign("inter", "ca", days=30)
        d_crt, d_key = self._leaf("d.test", "rsa", issuer="inter")
        self.chain_cert = (self.d / "d-chain.crt", d_key)
        self.chain_cert[0].write_bytes(d_crt.read_bytes() + (self.d / "inter.crt").read_bytes())
        self.leaf_only = (d_crt, d_key)
        self.expired = self._leaf("e.test", "rsa", start="20200101000000Z",
                                  end="20200201000000Z")

    def cert(self, name: str, kind: str = "rsa") -> tuple[Path, Path]:
        return self.certs[(name, kind)]

    def revoked_server(self) -> tuple[Path, Path, Path]:
        """(crt, key, crl): a leaf for r.test, revoked, and the root's CRL
        saying so (made on first use)."""
        crl = self.d / "crl.pem"
        if not crl.exists():
            self.certs[("r.test", "rsa")] = self._leaf("r.test", "rsa")
            self._ossl("ca", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key",
                       "-revoke", "r-rsa.crt")
            self._ossl("ca", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key",
                       "-gencrl", "-out", "crl.pem")
        crt, key = self.certs[("r.test", "rsa")]
        return crt, key, crl

    # -- openssl

    def _ossl(self, *args):
        r = subprocess.run(["openssl", *args], cwd=self.d, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed:\n"
                               f"{r.stderr.decode(errors='replace')}")

    def _csr(self, stem: str, cn: str, kind: str, exts: list[str]):
        newkey = ["-newkey", "rsa:2048"] if kind == "rsa" else \
            ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        args = ["req", "-new", *newkey, "-nodes", "-keyout", f"{stem}.key", "-out",
                f"{stem}.csr", "-subj", f"/CN={cn}"]
        for e in exts:
            args += ["-addext", e]
        self._ossl(*args)

    def _sign(self, stem: str, issuer: str, days: int = 30, start: str | None = None,
              end: str | None = None):
        dates = ["-startdate", start, "-enddate", end] if start else ["-days", str(days)]
        self._ossl("ca", "-batch", "-config", "ca.cnf", "-cert", f"{issuer}.crt", "-keyfile",
                   f"{issuer}.key", "-in", f"{stem}.csr", "-out", f"{stem}.crt", "-notext",
                   *dates)

    def _leaf(self, name: str, kind: str, issuer: str = "ca", start: str | None = None,
              end: str | None = None) -> tuple[Path, Path]:
        stem = f"{name.split('.')[0]}-{kind}"
        self._csr(stem, name, kind, [f"subjectAltName=DNS:{name}",
                                     "basicConstraints=critical,CA:FALSE"])
        self._sign(stem, issuer, start=start, end=end)
        return self.d / f"{stem}.crt", self.d / f"{stem}.key"


class ClientPki:
    """Client certificates for ssl_verify_client / proxy_ssl_certificate: a
    client CA of its own (so the server CA's certificates are strangers), a
    good and a revoked client (with the CRL), a self-signed one and the good
    key encrypted with PASSWORD."""

    PASSWORD = "s3cret pass"

    def __init__(self, d: Path):
        self.d = Path(d)
        self.d.mkdir(parents=True, exist_ok=True)
        (self.d / "index.txt").write_text("")
        (self.d / "serial").write_text("2000\n")
        (self.d / "crlnumber").write_text("01\n")
        (self.d / "ca.cnf").write_text(CA_CNF)
        self._ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "cca.key",
                   "-out", "cca.crt", "-subj", "/O=Switchyard Test/CN=Switchyard Client CA",
                   "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.ca = self.d / "cca.crt"
        self.good = self._client("client1", "cca")
        self.revoked = self._client("client2", "cca")
        self._ossl("ca", "-config", "ca.cnf", "-cert", "cca.crt", "-keyfile", "cca.key",
                   "-revoke", "client2.crt")
        self._ossl("ca", "-config", "ca.cnf", "-cert", "cca.crt", "-keyfile", "cca.key",
                   "-gencrl", "-out", "crl.pem")
        self.crl = self.d / "crl.pem"
        # another CA (same shape), whose client is a stranger to the client CA
        self._ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "oca.key",
                   "-out", "oca.crt", "-subj", "/CN=Other CA", "-days", "30",
                   "-addext", "basicConstraints=critical,CA:TRUE")
        self.stranger = self._client("stranger", "oca")
        self._ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self.key",
                   "-out", "self.crt", "-subj", "/CN=selfie", "-days", "30")
        self.self_signed = (self.d / "self.crt", self.d / "self.key")
        # an intermediate client CA and a client it signs (file: leaf + intermediate)
        self._ossl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "cinter.key",
                   "-out", "cinter.csr", "-subj", "/CN=Switchyard Client Intermediate",
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._ossl("ca", "-batch", "-config", "ca.cnf", "-cert", "cca.crt", "-keyfile", "cca.key",
                   "-in", "cinter.csr", "-out", "cinter.crt", "-notext", "-days", "30")
        leaf, key = self._client("client3", "cinter")
        self.chained = (self.d / "client3-chain.crt", key)
        self.chained[0].write_bytes(leaf.read_bytes() + (self.d / "cinter.crt").read_bytes())
        self.good_enc_key = self.d / "client1-enc.key"
        self._ossl("pkey", "-in", "client1.key", "-aes256", "-passout",
                   f"pass:{self.PASSWORD}", "-out", "client1-enc.key")

    def _ossl(self, *args):
        r = subprocess.run(["openssl", *args], cwd=self.d, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed:\n"
                               f"{r.stderr.decode(errors='replace')}")

    def _client(self, cn: str, issuer: str) -> tuple[Path, Path]:
        self._ossl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{cn}.key",
                   "-out", f"{cn}.csr", "-subj", f"/O=Switchyard Test/CN={cn}",
                   "-addext", "basicConstraints=critical,CA:FALSE",
                   "-addext", "extendedKeyUsage=clientAuth")
        self._ossl("ca", "-batch", "-config", "ca.cnf", "-cert", f"{issuer}.crt", "-keyfile",
                   f"{issuer}.key", "-in", f"{cn}.csr", "-out", f"{cn}.crt", "-notext",
                   "-days", "30")
        return self.d / f"{cn}.crt", self.d / f"{cn}.key"
