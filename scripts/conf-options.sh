# conf-options.sh — what the two web server configuration generators (gen-lighttpd-conf.sh and
# gen-apache-conf.sh) share: their command line (--opt VALUE, --opt=VALUE, flags, -h/--help),
# die, and the checks that read the same in both (numbers, the TLS pair, absolute paths).
# Sourced, never run: the generator sets prog (its name, for messages) and defines usage and
# safe_string (what may stand inside its configuration's strings) before calling these.
# shellcheck shell=bash
# shellcheck disable=SC2154 # prog, value_options and flag_options are the generator's

die() {
	echo "$prog: $*" >&2
	exit 2
}

# parse_options ARGS... — reads the generator's command line. value_options (an array) names
# the options that take a value, flag_options those that take none: --some-opt VALUE (or
# --some-opt=VALUE) sets the variable some_opt; a flag sets its variable to 1. -h or --help
# prints usage and exits; anything else is an error.
parse_options() {
	local opt val
	while (($#)); do
		opt=$1
		if [[ $opt == -h || $opt == --help ]]; then
			usage
			exit 0
		elif is_one_of "$opt" "${flag_options[@]}"; then
			val=1
			shift
		elif is_one_of "$opt" "${value_options[@]}"; then
			(($# >= 2)) || die "$opt needs a value"
			val=$2
			shift 2
		elif [[ $opt == --*=* ]]; then
			set -- "${opt%%=*}" "${opt#*=}" "${@:2}"
			continue
		else
			usage >&2
			die "unknown option: $opt"
		fi
		opt=${opt#--}
		printf -v "${opt//-/_}" '%s' "$val"
	done
}

is_one_of() { # word candidates...
	local word=$1 c
	shift
	for c in "$@"; do
		[[ $word == "$c" ]] && return 0
	done
	return 1
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && ((10#$1 >= $2 && 10#$1 <= $3)); }

# check_tls_and_paths WHERE NAME... — --tls-cert and --tls-key come together or not at all, and
# each variable NAME that is set holds an absolute path that safe_string accepts (WHERE says
# where it would not fit, for the message). Directories lose a trailing slash ("/" stays); files
# (tls_*, *_key) are left as given.
check_tls_and_paths() {
	local where=$1 d v
	shift
	[[ -n $tls_cert && -n $tls_key || -z $tls_cert && -z $tls_key ]] ||
		die "--tls-cert and --tls-key go together"
	for d in "$@"; do
		v=${!d}
		[[ -z $v ]] && continue
		safe_string "$v" || die "--${d//_/-}: \"$v\" cannot be used $where"
		[[ $v == /* ]] || die "--${d//_/-}: \"$v\" is not an absolute path"
		[[ $d == tls_* || $d == *_key ]] && continue
		v=${v%/}
		printf -v "$d" '%s' "${v:-/}"
	done
}
