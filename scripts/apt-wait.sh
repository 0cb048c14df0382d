# apt-get that waits for another apt or dpkg instead of failing at once (sourced by scripts/lib.sh,
# scripts/build-worker.sh and scripts/worker/debian-source.sh). A fresh Debian server runs
# unattended-upgrades, which holds apt's and dpkg's locks for minutes at a time.
# shellcheck shell=bash

# apt_waiting CMD... : runs CMD, an apt-get command line (behind sudo or env if need be), and waits
# up to LESSONCAST_APT_LOCK_TIMEOUT seconds (default 300) for a lock another apt or dpkg holds.
# `-o DPkg::Lock::Timeout` (added after apt-get) makes apt-get wait for dpkg's locks itself;
# apt-get update's lists lock knows no timeout, so a refusal naming a lock is retried every 5 s
# until the same deadline. apt-get's output goes to stderr: callers keep stdout for results.
apt_waiting() {
	local wait=${LESSONCAST_APT_LOCK_TIMEOUT:-300} cmd=() arg err rc deadline
	if [[ ! $wait =~ ^[0-9]+$ ]]; then
		printf '[lessoncast] error: LESSONCAST_APT_LOCK_TIMEOUT must be a number of seconds, got %q\n' "$wait" >&2
		return 2
	fi
	for arg in "$@"; do
		cmd+=("$arg")
		[[ $arg == apt-get ]] && cmd+=(-o "DPkg::Lock::Timeout=$wait")
	done
	printf '[lessoncast] apt-get waits up to %s s for a lock another apt or dpkg holds (LESSONCAST_APT_LOCK_TIMEOUT)\n' "$wait" >&2
	deadline=$((SECONDS + wait))
	while :; do
		# stderr is read to tell a held lock from any other failure, then shown as it was.
		{ err=$("${cmd[@]}" 2>&1 >&3 3>&-) && rc=0 || rc=$?; } 3>&2
		[[ -z $err ]] || printf '%s\n' "$err" >&2
		if [[ $rc -eq 0 || ! $err =~ (Could not get lock|Unable to lock|Unable to acquire the dpkg) || $SECONDS -ge $deadline ]]; then
			return "$rc"
		fi
		printf '[lessoncast] WARNING: another apt or dpkg holds a lock; trying again in 5 s (%s s left)\n' $((deadline - SECONDS)) >&2
		sleep 5
	done
}
