package accesslog

import (
	"strconv"
	"time"
)

// format is how a line is framed for a target (HAProxy's "log ... format").
type format int

const (
	// <PRI>Mmm dd hh:mm:ss tag[pid]: msg. HAProxy writes a hostname in
	// this header only with log-send-hostname, which Sluice does not
	// have: local syslog daemons and journald take the tag right after
	// the date.
	formatRFC3164  format = iota
	formatRFC5424         // <PRI>1 ISO-DATE hostname tag pid - - msg
	formatShort           // <LEVEL>msg
	formatPriority        // <PRI>msg
	formatTimed           // <LEVEL>ISO-DATE msg
	formatISO             // ISO-DATE msg
	formatRaw             // msg
)

func parseFormat(s string) (format, bool) {
	switch s {
	case "", "rfc3164", "local": // "local" is HAProxy's name for the same
		return formatRFC3164, true
	case "rfc5424":
		return formatRFC5424, true
	case "short":
		return formatShort, true
	case "priority":
		return formatPriority, true
	case "timed":
		return formatTimed, true
	case "iso":
		return formatISO, true
	case "raw":
		return formatRaw, true
	}
	return 0, false
}

// parseFacility returns the code of a syslog facility name. No facility
// means local0.
func parseFacility(s string) (int, bool) {
	switch s {
	case "kern":
		return 0, true
	case "user":
		return 1, true
	case "mail":
		return 2, true
	case "daemon":
		return 3, true
	case "auth":
		return 4, true
	case "syslog":
		return 5, true
	case "lpr":
		return 6, true
	case "news":
		return 7, true
	case "uucp":
		return 8, true
	case "cron":
		return 9, true
	case "auth2":
		return 10, true
	case "ftp":
		return 11, true
	case "ntp":
		return 12, true
	case "audit":
		return 13, true
	case "alert":
		return 14, true
	case "cron2":
		return 15, true
	case "", "local0":
		return 16, true
	case "local1", "local2", "local3", "local4", "local5", "local6", "local7":
		return 16 + int(s[5]-'0'), true
	}
	return 0, false
}

// parseLevel returns a maximum level; none means every level.
func parseLevel(s string) (Level, bool) {
	switch s {
	case "emerg":
		return LevelEmerg, true
	case "alert":
		return LevelAlert, true
	case "crit":
		return LevelCrit, true
	case "err":
		return LevelErr, true
	case "warning":
		return LevelWarning, true
	case "notice":
		return LevelNotice, true
	case "info":
		return LevelInfo, true
	case "", "debug":
		return LevelDebug, true
	}
	return 0, false
}

// isoLayout is RFC 3339 with microseconds and a numeric offset, as HAProxy
// writes it ("+00:00", never "Z").
const isoLayout = "2006-01-02T15:04:05.000000-07:00"

// appendFrame appends msg framed for a target: the header, the message cut
// so that the frame does not exceed maxLen bytes, and a newline (HAProxy
// ends every frame, datagrams included, with one that maxLen does not count).
func appendFrame(dst []byte, f format, facility int, level Level, now time.Time, hostname, tag string, pid int, msg []byte, maxLen int) []byte {
	start := len(dst)
	pri := facility<<3 | int(level)
	switch f {
	case formatRFC3164:
		dst = appendPri(dst, pri)
		dst = now.AppendFormat(dst, "Jan _2 15:04:05 ")
		dst = append(dst, tag...)
		dst = append(dst, '[')
		dst = strconv.AppendInt(dst, int64(pid), 10)
		dst = append(dst, ']', ':', ' ')
	case formatRFC5424:
		dst = appendPri(dst, pri)
		dst = append(dst, '1', ' ')
		dst = now.AppendFormat(dst, isoLayout)
		dst = append(dst, ' ')
		dst = append(dst, hostname...)
		dst = append(dst, ' ')
		dst = append(dst, tag...)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(pid), 10)
		dst = append(dst, " - - "...) // no message id, no structured data
	case formatShort:
		dst = appendPri(dst, int(level))
	case formatPriority:
		dst = appendPri(dst, pri)
	case formatTimed:
		dst = appendPri(dst, int(level))
		dst = now.AppendFormat(dst, isoLayout)
		dst = append(dst, ' ')
	case formatISO:
		dst = now.AppendFormat(dst, isoLayout)
		dst = append(dst, ' ')
	}
	dst = append(dst, msg...)
	if len(dst)-start > maxLen {
		dst = dst[:start+maxLen]
	}
	return append(dst, '\n')
}

func appendPri(dst []byte, pri int) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	return append(dst, '>')
}
