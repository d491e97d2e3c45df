//! Layer compression, detected from the first bytes of the stream.
//!
//! The OCI image spec (`layer.md`) allows a layer as a plain tar, gzip or zstd; Docker also reads
//! bzip2 and xz. Media types are often wrong in the wild (a `layer.tar` that is gzip), so, like
//! Docker, skiff looks at the magic bytes instead. It decodes plain and gzip; zstd, bzip2 and xz
//! layers are refused with a message that says so (no small pure-Rust zstd decoder was worth its
//! weight at this stage; images that Docker and skopeo write are plain or gzip).

use std::io::{self, BufRead, BufReader, Read};

use crate::error::LayerError;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
}

impl Compression {
    /// Recognises the magic bytes at the start of a stream.
    pub fn detect(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
            _ => Compression::None,
        }
    }

    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> oci_spec::image::MediaType {
        use oci_spec::image::MediaType;
        match self {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
            Compression::Bzip2 => MediaType::Other("application/x-bzip2".into()),
            Compression::Xz => MediaType::Other("application/x-xz".into()),
        }
    }
}

/// Wraps `reader` in the decoder its first bytes call for; the result reads the plain tar.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> Result<Box<dyn Read + 'a>, LayerError> {
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let compression = Compression::detect(fill_head(&mut buffered).map_err(LayerError::Read)?);
    match compression {
        Compression::None => Ok(Box::new(buffered)),
        Compression::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered))),
        Compression::Zstd => Err(LayerError::Compression("zstd")),
        Compression::Bzip2 => Err(LayerError::Compression("bzip2")),
        Compression::Xz => Err(LayerError::Compression("xz")),
    }
}

/// Detects the compression of `reader` without consuming it.
pub fn detect_reader<R: Read>(reader: &mut BufReader<R>) -> io::Result<Compression> {
    Ok(Compression::detect(fill_head(reader)?))
}

/// Makes sure the buffer holds the first few bytes (a short read may return fewer).
fn fill_head<R: Read>(reader: &mut BufReader<R>) -> io::Result<&[u8]> {
    const MAGIC_LEN: usize = 6;
    // `fill_buf` returns what one read gave; a pipe may give one byte at a time. A BufReader
    // cannot top up a partly filled buffer, so a stream whose first read is shorter than the magic
    // is treated as plain, which is right for any tar (its first block is 512 bytes of header).
    let head = reader.fill_buf()?;
    Ok(&head[..head.len().min(MAGIC_LEN)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn magic_bytes_are_recognised() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"BZh9"), Compression::Bzip2);
        assert_eq!(Compression::detect(b"\xfd7zXZ\0"), Compression::Xz);
        assert_eq!(Compression::detect(b"etc/"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }

    #[test]
    fn gzip_is_decoded_and_plain_passes_through() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello tar").unwrap();
        let gz = gz.finish().unwrap();
        let mut out = String::new();
        decompress(&gz[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello tar");
        out.clear();
        decompress(&b"plain"[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "plain");
    }

    #[test]
    fn zstd_is_refused_with_a_clear_error() {
        let err = decompress(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0][..])
            .err()
            .unwrap();
        assert!(err.to_string().contains("zstd"), "{err}");
        assert!(err.to_string().contains("gzip"), "{err}");
    }
}
