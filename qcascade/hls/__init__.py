"""HLS side of qcascade: hls4ml conversion helpers, vendor report parsers and the analytic estimate."""
