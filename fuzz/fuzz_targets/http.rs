//! Our HTTP/1.1 server side on a byte stream, as the server's connection loop uses it: request
//! heads (pipelined), body framing (Content-Length, chunked, Expect: 100-continue), query
//! parameters, keep-alive, the Authorization header, and response encoding.
#![no_main]

use std::io::{self, BufReader, Cursor, Read, Write};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ovlva_fuzz::auth::Authenticator;
use ovlva_fuzz::config::{Auth, BasicUser};
use ovlva_fuzz::http::{self, HeadError, Response};

/// A client connection: reads from the fuzz input, writes are kept.
struct Conn {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const MAX_BODY: u64 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let auth = Authenticator::new(&Auth {
        basic: vec![BasicUser {
            user: "lva".into(),
            password: "s3cret".into(),
        }],
        bearer: vec!["token".into()],
    });
    let conn = Conn {
        input: Cursor::new(data.to_vec()),
        output: Vec::new(),
    };
    let mut r = BufReader::with_capacity(256, conn);
    for _ in 0..8 {
        let head = match http::read_head(&mut r, Duration::from_millis(5)) {
            Ok(head) => head,
            Err(HeadError::Closed | HeadError::Bad(_) | HeadError::TooLarge) => return,
            Err(e) => panic!("a cursor cannot time out or fail: {e:?}"),
        };
        let keep_alive = head.keep_alive();
        let _ = head.query_param("width");
        let _ = auth.allows(head.header("authorization"));
        let _ = auth.challenge();
        let resp = match http::read_body(&mut r, &head, MAX_BODY, Duration::from_millis(5)) {
            Ok(body) => {
                assert!(body.len() as u64 <= MAX_BODY);
                Response::json(200, body)
            }
            Err(_) => Response::error(400, "bad body"),
        };
        let bytes = http::encode(&resp, keep_alive, head.method == "HEAD");
        assert!(bytes.starts_with(b"HTTP/1.1 "));
        if !keep_alive {
            return;
        }
    }
});
