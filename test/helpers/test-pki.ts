import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** P-256 keys, no passphrase: quick to make, and what the daemon's TLS must accept. */
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A certificate and its key, as file paths. */
export interface CertFiles {
  crt: string;
  key: string;
}

/**
 * Certificates made with the real openssl in a fresh temporary folder, valid for two days: test
 * CAs, certificates they sign (server or client, by `ext`), and self-signed ones.
 */
export class TestPki {
  readonly dir: string;

  constructor(
    private readonly openssl: string,
    prefix = 'pki-',
  ) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  private path(f: string): string {
    return join(this.dir, f);
  }

  private run(...args: string[]): void {
    execFileSync(this.openssl, args, { cwd: this.dir, stdio: 'pipe' });
  }

  /** A self-signed certificate `name`.crt / `name`.key: a CA, or with `san` a server nobody vouches for. */
  selfSigned(name: string, cn: string, san?: string): CertFiles {
    const files = { crt: this.path(`${name}.crt`), key: this.path(`${name}.key`) };
    const ext = san ? ['-addext', `subjectAltName=${san}`] : [];
    this.run('req', '-x509', ...EC, '-keyout', files.key, '-out', files.crt, '-days', '2', '-subj', `/CN=${cn}`, ...ext);
    return files;
  }

  /** A certificate `name` signed by `ca`; `ext` its extensions (subjectAltName, extendedKeyUsage), one a line. */
  issue(ca: CertFiles, name: string, cn: string, ext: string): CertFiles {
    const files = { crt: this.path(`${name}.crt`), key: this.path(`${name}.key`) };
    writeFileSync(this.path(`${name}.ext`), ext);
    this.run('req', ...EC, '-keyout', files.key, '-out', this.path(`${name}.csr`), '-subj', `/CN=${cn}`);
    const signed = ['-in', this.path(`${name}.csr`), '-CA', ca.crt, '-CAkey', ca.key, '-CAcreateserial', '-out', files.crt];
    this.run('x509', '-req', ...signed, '-days', '2', '-extfile', this.path(`${name}.ext`));
    return files;
  }
}
