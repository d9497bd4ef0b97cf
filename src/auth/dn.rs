//! The subject of an X.509 certificate as a string, the way a Java broker prints it.
//!
//! Kafka hands `ssl.principal.mapping.rules` the client certificate's subject as
//! `X500Principal.getName()` returns it: RFC 2253, the last RDN first, attributes with a
//! standard keyword (CN, C, L, ST, O, OU, STREET, DC, UID) by keyword, every other one as its
//! dotted OID with the value in `#hex` of its DER encoding, and the characters `,=+<>#;"\`
//! escaped with a backslash. Rules written for a Kafka broker only match the same names if we
//! print them the same way, so this module reproduces that format.
//!
//! The certificate bytes come from the peer. They were parsed and verified by the TLS library
//! before they reach us, but the reader still trusts nothing: every length is checked against
//! the bytes that are there, nothing is indexed without a bound, and a malformed certificate is
//! an error, never a panic.

use std::fmt::Write as _;

/// Why a certificate's subject could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the certificate's subject: {0}")]
pub struct DnError(&'static str);

/// One DER element: its tag, its contents, and the whole encoding (tag and length included).
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;

/// Splits the first DER element off `input`.
fn next_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DnError> {
    let (&tag, rest) = input.split_first().ok_or(DnError("truncated element"))?;
    if tag & 0x1f == 0x1f {
        return Err(DnError("multi-byte tags are not used in certificate names"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(DnError("truncated length"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(DnError("indefinite or oversized length"));
        }
        let (bytes, after) = rest.split_at_checked(count).ok_or(DnError("truncated length"))?;
        rest = after;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    let (content, after) = rest.split_at_checked(len).ok_or(DnError("element longer than its container"))?;
    let header = input.len() - rest.len();
    let whole = input.get(..header + len).ok_or(DnError("element longer than its container"))?;
    Ok((Tlv { tag, content, whole }, after))
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(Tlv<'a>, &'a [u8]), DnError> {
    let (tlv, rest) = next_tlv(input)?;
    if tlv.tag != tag {
        return Err(DnError(what));
    }
    Ok((tlv, rest))
}

/// The subject distinguished name of a DER certificate, in Java's RFC 2253 form.
pub fn subject_rfc2253(cert_der: &[u8]) -> Result<String, DnError> {
    let (cert, _) = expect(cert_der, SEQUENCE, "a certificate is a SEQUENCE")?;
    let (tbs, _) = expect(cert.content, SEQUENCE, "tbsCertificate is a SEQUENCE")?;
    let mut fields = tbs.content;
    // version [0] EXPLICIT, absent in v1 certificates
    let (first, rest) = next_tlv(fields)?;
    if first.tag == VERSION {
        fields = rest;
    }
    // serialNumber, signature, issuer, validity, then the subject.
    for _ in 0..4 {
        fields = next_tlv(fields)?.1;
    }
    let (subject, _) = expect(fields, SEQUENCE, "the subject is a SEQUENCE")?;
    name_rfc2253(subject.content)
}

/// An RDNSequence (the contents of a Name) in RFC 2253 form: last RDN first.
fn name_rfc2253(mut rdns: &[u8]) -> Result<String, DnError> {
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (rdn, rest) = expect(rdns, SET, "a relative distinguished name is a SET")?;
        rdns = rest;
        let mut avas = rdn.content;
        let mut rdn_text = String::new();
        while !avas.is_empty() {
            let (ava, rest) = expect(avas, SEQUENCE, "an attribute is a SEQUENCE")?;
            avas = rest;
            if !rdn_text.is_empty() {
                rdn_text.push('+');
            }
            attribute_rfc2253(ava.content, &mut rdn_text)?;
        }
        parts.push(rdn_text);
    }
    parts.reverse();
    Ok(parts.join(","))
}

/// Standard attribute keywords RFC 2253 lets a printer use (and Java uses).
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn attribute_rfc2253(ava: &[u8], out: &mut String) -> Result<(), DnError> {
    let (oid, rest) = expect(ava, OID, "an attribute type is an OBJECT IDENTIFIER")?;
    let (value, _) = next_tlv(rest)?;
    let oid = dotted_oid(oid.content)?;
    out.push_str(keyword(&oid).unwrap_or(&oid));
    out.push('=');
    match keyword(&oid).and(string_value(value.tag, value.content)) {
        Some(text) => escape_value(&text, out),
        // An attribute without a keyword, or a value that is not a string: `#` and the hex of
        // the value's whole encoding, in lower case.
        None => {
            out.push('#');
            for b in value.whole {
                let _ = write!(out, "{b:02x}");
            }
        }
    }
    Ok(())
}

/// The string types Java prints as text; `None` for any other type.
fn string_value(tag: u8, bytes: &[u8]) -> Option<String> {
    let ascii = || bytes.iter().map(|&b| if b < 0x80 { char::from(b) } else { '\u{fffd}' }).collect();
    match tag {
        0x0c => Some(String::from_utf8_lossy(bytes).into_owned()), // UTF8String
        0x13 | 0x16 | 0x1b => Some(ascii()),                       // Printable, IA5, General
        0x14 => Some(bytes.iter().map(|&b| char::from(b)).collect()), // T61String, as Latin-1
        0x1e => {
            // BMPString: UTF-16, big-endian.
            let units = bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            Some(char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')).collect())
        }
        _ => None,
    }
}

/// RFC 2253 escaping as Java does it: `,=+<>#;"\` get a backslash, NUL becomes `\00`, and
/// leading and trailing spaces (and carriage returns) get a backslash each.
fn escape_value(value: &str, out: &mut String) {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            ',' | '=' | '+' | '<' | '>' | '#' | ';' | '"' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.push_str("\\00"),
            _ => escaped.push(c),
        }
    }
    let blank = |c: char| c == ' ' || c == '\r';
    let chars: Vec<char> = escaped.chars().collect();
    let lead = chars.iter().take_while(|&&c| blank(c)).count();
    let trail = chars.iter().rev().take_while(|&&c| blank(c)).count();
    for (i, &c) in chars.iter().enumerate() {
        if i < lead || i >= chars.len() - trail {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The dotted form of an OBJECT IDENTIFIER's contents.
fn dotted_oid(bytes: &[u8]) -> Result<String, DnError> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut current: u64 = 0;
    let mut pending = false;
    for &b in bytes {
        if current > (u64::MAX >> 7) {
            return Err(DnError("object identifier arc too large"));
        }
        current = (current << 7) | u64::from(b & 0x7f);
        pending = true;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (first, second) = match current {
                    0..=39 => (0, current),
                    40..=79 => (1, current - 40),
                    _ => (2, current - 80),
                };
                arcs.push(first);
                arcs.push(second);
            } else {
                arcs.push(current);
            }
            current = 0;
            pending = false;
        }
    }
    if pending || arcs.is_empty() {
        return Err(DnError("truncated object identifier"));
    }
    Ok(arcs.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER of one element with a short length.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 0x80 {
            v.push(content.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(content);
        v
    }

    fn ava(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        tlv(0x30, &[tlv(0x06, oid), tlv(tag, value)].concat())
    }

    fn rdn(avas: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x31, &avas.concat())
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    #[test]
    fn last_rdn_first_with_keywords_and_escapes() {
        let name = [
            rdn(&[ava(C, 0x13, b"US")]),
            rdn(&[ava(O, 0x0c, b"Acme, Inc.")]),
            rdn(&[ava(OU, 0x0c, b"eng"), ava(OU, 0x0c, b"ops")]),
            rdn(&[ava(CN, 0x0c, b" a=b#c ")]),
        ]
        .concat();
        assert_eq!(name_rfc2253(&name).unwrap(), r"CN=\ a\=b\#c\ ,OU=eng+OU=ops,O=Acme\, Inc.,C=US");
    }

    #[test]
    fn attributes_without_a_keyword_are_hex() {
        let name = [rdn(&[ava(EMAIL, 0x16, b"a@b")]), rdn(&[ava(CN, 0x0c, b"x")])].concat();
        assert_eq!(name_rfc2253(&name).unwrap(), "CN=x,1.2.840.113549.1.9.1=#1603614062");
        // A keyword attribute whose value is not a string type is hex too.
        let name = rdn(&[ava(CN, 0x04, b"\x01")]);
        assert_eq!(name_rfc2253(&name).unwrap(), "CN=#040101");
    }

    #[test]
    fn a_whole_certificate_and_malformed_ones() {
        let subject = tlv(0x30, &rdn(&[ava(CN, 0x0c, b"client")]));
        let tbs = tlv(
            0x30,
            &[
                tlv(0xa0, &tlv(0x02, &[2])),
                tlv(0x02, &[1]),
                tlv(0x30, &[]),
                tlv(0x30, &rdn(&[ava(CN, 0x0c, b"ca")])),
                tlv(0x30, &[]),
                subject,
                tlv(0x30, &[]),
            ]
            .concat(),
        );
        let cert = tlv(0x30, &[tbs, tlv(0x30, &[]), tlv(0x03, &[0])].concat());
        assert_eq!(subject_rfc2253(&cert).unwrap(), "CN=client");
        // Every truncation is an error, never a panic.
        for cut in 0..cert.len() {
            assert!(subject_rfc2253(&cert[..cut]).is_err(), "cut at {cut}");
        }
        assert!(subject_rfc2253(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(subject_rfc2253(&[0x30, 0x80]).is_err());
    }

    #[test]
    fn oids() {
        assert_eq!(dotted_oid(EMAIL).unwrap(), "1.2.840.113549.1.9.1");
        assert_eq!(
            dotted_oid(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19]).unwrap(),
            "0.9.2342.19200300.100.1.25"
        );
        assert!(dotted_oid(&[0x86]).is_err());
        assert!(dotted_oid(&[0xff; 20]).is_err());
    }
}
