"""The cluster's certificates: a CA, the API server's serving certificate, client certificates.

Like kubeadm, each cluster gets its own CA. The API server trusts client certificates
signed by it; the certificate's CN is the user name and its O fields are the groups
(``kubernetes-admin`` in ``system:masters`` for the student's kubeconfig). ECDSA P-256
keys keep generation instant, which matters for a lab that starts in seconds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .clusterconfig import ClusterConfig

VALIDITY = dt.timedelta(days=365)
CA_VALIDITY = dt.timedelta(days=3650)


@dataclass(frozen=True)
class CertKey:
    """A PEM certificate and its PEM private key."""

    cert: bytes
    key: bytes

    def write(self, directory: Path, stem: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{stem}.crt").write_bytes(self.cert)
        key_path = directory / f"{stem}.key"
        key_path.write_bytes(self.key)
        key_path.chmod(0o600)

    @classmethod
    def read(cls, directory: Path, stem: str) -> CertKey:
        return cls((directory / f"{stem}.crt").read_bytes(), (directory / f"{stem}.key").read_bytes())


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def generate_ca(common_name: str = "labctl-ca") -> CertKey:
    """A self-signed CA allowed to sign certificates."""
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_certificate(ca: CertKey, common_name: str, *, orgs: tuple[str, ...] = (),
                      dns_names: tuple[str, ...] = (), ip_addresses: tuple[str, ...] = (),
                      server: bool = False, client: bool = False) -> CertKey:
    """A leaf certificate signed by ``ca`` for a server (SANs) and/or a client (CN/O)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):  # generate_ca makes every labctl CA
        raise ValueError(f"the CA key is a {type(ca_key).__name__}, not an ECDSA key")
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, orgs)).issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_apiserver_certificate(ca: CertKey, cluster: ClusterConfig, ip_addresses: tuple[str, ...] = (),
                                dns_names: tuple[str, ...] = ()) -> CertKey:
    """The API server's serving certificate, answering to every name pods and nodes use.

    As kubeadm's apiserver.crt: ``localhost``, the ``kubernetes`` Service's DNS names and its
    ClusterIP (the first address of *this* lab's service subnet), plus the given extras.
    """
    ips = tuple(dict.fromkeys(("127.0.0.1", cluster.kubernetes_service_ip) + ip_addresses))
    return issue_certificate(ca, "kube-apiserver", dns_names=("localhost",) + cluster.api_server_dns_names + dns_names,
                             ip_addresses=ips, server=True)


def ensure_cluster_pki(directory: Path, cluster: ClusterConfig, ip_addresses: tuple[str, ...] = (),
                       dns_names: tuple[str, ...] = ()) -> None:
    """Create ca, apiserver and admin certificates under ``directory`` unless present.

    Idempotent so a restarted control plane keeps its identity and existing kubeconfigs
    stay valid.
    """
    if not (directory / "ca.crt").exists():
        generate_ca().write(directory, "ca")
    ca = CertKey.read(directory, "ca")
    if not (directory / "apiserver.crt").exists():
        issue_apiserver_certificate(ca, cluster, ip_addresses, dns_names).write(directory, "apiserver")
    if not (directory / "admin.crt").exists():
        issue_certificate(ca, "kubernetes-admin", orgs=("system:masters",), client=True).write(
            directory, "admin")
