// Forwarding header, kept while main.cc, metrics.h and test_gatewayd_state.cc still include it:
// the pieces it held live where they belong now. New code includes those headers directly.
//   files.h                 durable file writes and reads
//   text.h                  iso_time, unified_diff
//   api/auth.h              secure_equal (token comparison)
//   service/audit_log.h     redact_yaml_tokens (audit log bodies)
//
// Zone: slow path.
#pragma once

#include "ctl/gatewayd/api/auth.h"
#include "ctl/gatewayd/files.h"
#include "ctl/gatewayd/service/audit_log.h"
#include "ctl/gatewayd/text.h"
