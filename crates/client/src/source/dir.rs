//! [`DirSource`]: a repository in a directory on this machine (a mounted
//! share, a USB stick, a test fixture), answering as an HTTP server would.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::{Request, Response, Source, SourceError, SourceErrorKind};

/// A repository in a local directory.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// The repository at `root`.
    pub fn new(root: impl Into<PathBuf>) -> DirSource {
        DirSource { root: root.into() }
    }
}

impl Source for DirSource {
    fn describe(&self, path: &str) -> String {
        self.root.join(path).display().to_string()
    }

    /// 200 with the file, 206 from an offset inside it, 416 past its end,
    /// 404 when it is missing.
    fn get(&self, req: &Request) -> Result<Response, SourceError> {
        let path = self.root.join(&req.path);
        let mut f = match fs_err::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Response::new(404, Box::new(std::io::empty())));
            }
            Err(e) => return Err(SourceError::new(SourceErrorKind::Other, e)),
        };
        let len = f
            .metadata()
            .map_err(|e| SourceError::new(SourceErrorKind::Other, e))?
            .len();
        if req.offset == 0 {
            return Ok(Response::new(200, Box::new(f.into_parts().0)));
        }
        if req.offset >= len {
            return Ok(Response::new(416, Box::new(std::io::empty())));
        }
        f.seek(SeekFrom::Start(req.offset))
            .map_err(|e| SourceError::new(SourceErrorKind::Other, e))?;
        let body: Box<dyn Read + Send> = Box::new(f.into_parts().0);
        Ok(Response::new(206, body).content_range(format!(
            "bytes {}-{}/{len}",
            req.offset,
            len - 1
        )))
    }
}
