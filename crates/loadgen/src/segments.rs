//! How many TCP data segments the servers sent: the sum of `data_segs_out`
//! over the established sockets of their listening ports, as `ss -ti`
//! reports it. With Nagle off, as every server here has it, a write to a
//! socket is one data segment unless the kernel merges writes that queue
//! up behind each other, so deliveries per segment is what one write of a
//! server carried, read the same way for Rust, Node and Python alike (their
//! `send`, `write` and `writev` calls are not all counted by `/proc/PID/io`).

use std::process::Command;

/// Data segments sent so far from the sockets of `ports`, or `None` when
/// `ss` is missing or fails (the figure is then left out of the report).
pub fn data_segments_out(ports: &[u16]) -> Option<u64> {
    if ports.is_empty() {
        return None;
    }
    // ss wants the parentheses apart from the terms: "( sport = :1 or … )".
    let mut filter = String::from("( ");
    for (index, port) in ports.iter().enumerate() {
        if index > 0 {
            filter.push_str(" or ");
        }
        filter.push_str(&format!("sport = :{port}"));
    }
    filter.push_str(" )");
    let output = Command::new("ss")
        .args(["-tinH", "state", "established", &filter])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(sum_data_segments(&String::from_utf8_lossy(&output.stdout)))
}

fn sum_data_segments(ss_output: &str) -> u64 {
    ss_output
        .split_whitespace()
        .filter_map(|field| field.strip_prefix("data_segs_out:"))
        .filter_map(|count| count.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_socket() {
        let output = "0 0 127.0.0.1:80 127.0.1.2:5000\n\t bbr segs_out:9 data_segs_out:7 data_segs_in:2\n\
                      0 0 127.0.0.1:80 127.0.1.3:5001\n\t cubic segs_out:4 data_segs_out:3\n";
        assert_eq!(sum_data_segments(output), 10);
        assert_eq!(sum_data_segments(""), 0);
    }

    #[test]
    fn counts_what_a_listening_port_sent() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.set_nodelay(true).unwrap();
        let before = data_segments_out(&[port, 1]).expect("ss answers");
        for _ in 0..3 {
            server.write_all(b"frame").unwrap();
            let mut frame = [0; 5];
            client.read_exact(&mut frame).unwrap();
        }
        let after = data_segments_out(&[port, 1]).expect("ss answers");
        assert_eq!(after - before, 3, "one segment per acknowledged write");
    }
}
