//! The latency scenario's distribution drawn as an SVG histogram (`--svg FILE`).

use std::time::Duration;

use crate::report::Report;
use crate::stats::ms;

impl Report {
    /// The latency scenario's distribution as an SVG histogram (log-spaced bins).
    pub fn svg(&self) -> Option<String> {
        let l = self.latency.as_ref()?;
        let v = &l.samples;
        let lo = v.iter().min()?.as_secs_f64().max(1e-6);
        let hi = v.iter().max()?.as_secs_f64().max(lo * 1.01);
        const BINS: usize = 40;
        let (w, h, pad) = (800.0, 300.0, 50.0);
        let bin = |d: &Duration| {
            let r = (d.as_secs_f64().max(lo).ln() - lo.ln()) / (hi.ln() - lo.ln());
            ((r * BINS as f64) as usize).min(BINS - 1)
        };
        let mut counts = [0usize; BINS];
        for d in v {
            counts[bin(d)] += 1;
        }
        let top = *counts.iter().max()? as f64;
        let bw = (w - 2.0 * pad) / BINS as f64;
        let mut s = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
        );
        s.push_str(&format!(
            r#"<text x="{pad}" y="20">chitty-bench: delivery latency, {} nodes ({}), {} deliveries; p50 {:.2} ms, p99 {:.2} ms</text>"#,
            self.nodes,
            self.placement,
            v.len(),
            ms(l.latency.p50),
            ms(l.latency.p99)
        ));
        for (i, c) in counts.iter().enumerate() {
            let bh = (h - 2.0 * pad) * (*c as f64) / top;
            s.push_str(&format!(
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#4a7"/>"##,
                pad + i as f64 * bw,
                h - pad - bh,
                bw - 1.0,
                bh
            ));
        }
        for q in [l.latency.p50, l.latency.p99] {
            let x = pad + bin(&q) as f64 * bw + bw / 2.0;
            s.push_str(&format!(
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#c33"/><text x="{x:.1}" y="{}" fill="#c33">{:.2} ms</text>"##,
                pad,
                h - pad,
                pad - 4.0,
                ms(q)
            ));
        }
        s.push_str(&format!(
            r#"<text x="{pad}" y="{}">{:.3} ms</text><text x="{}" y="{}" text-anchor="end">{:.3} ms (log scale)</text></svg>"#,
            h - pad + 16.0,
            lo * 1000.0,
            w - pad,
            h - pad + 16.0,
            hi * 1000.0
        ));
        Some(s)
    }
}
