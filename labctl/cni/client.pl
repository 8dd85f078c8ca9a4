# The body of a labctl CNI plugin executable, a thin client of the node's CNI daemon
# (labctl.cni.shim.client_script puts the shebang and the settings above it; the wire
# format is described there).
#
# Perl, because perl-base is Essential in Debian (every node image has it) and a bare perl
# starts in ~2 ms of CPU against ~9 ms for `python3 -SE`: a pod's start waits for two of these.
# Builtins only, no `use` at all: `use Socket` alone costs ~7 ms, so AF_UNIX and SOCK_STREAM
# are Linux's numbers (1, 1) and errnos are compared as numbers (ENOENT 2, ECONNREFUSED 111).
# The rare paths (no daemon will do the call, or one broke off) run labctl.cni.shim in
# Python with the config on its stdin: the plugin then does the work itself, or prints the
# spec's error code 5.

$SIG{PIPE} = 'IGNORE';    # a daemon that closes early is an error below, not a silent death
binmode STDIN;
binmode STDOUT;
binmode STDERR;
my $stdin = do { local $/; <STDIN> } // '';

sub python {
    local $SIG{PIPE} = 'IGNORE';
    open(my $py, '|-', $python, '-SE', '-c', $python_code, @_) or die "$0: cannot run $python: $!\n";
    print $py $stdin;
    close $py;
    exit($? & 127 ? 1 : $? >> 8);
}

sub fail {
    my ($msg, $details) = @_;
    python('fail', "labctl CNI daemon at $socket $msg", $details);
}

my @ns = stat '/proc/self/ns/net';    # the daemon serves only callers in its own netns
my $request = join("\0", 'labctl-cni/1', $plugin, "$ns[0]:$ns[1]",
                   map { "$_=$ENV{$_}" } grep { exists $ENV{$_} } @forwarded_env) . "\0\0" . $stdin;

socket(my $s, 1, 1, 0) or python('fallback', $module);
my $connected = eval {
    local $SIG{ALRM} = sub { die "timed out\n" };
    alarm $connect_timeout;
    my $ok = connect($s, pack('S a*', 1, $socket));
    my ($errno, $error) = ($! + 0, "$!");
    alarm 0;
    $ok or $errno == 2 or $errno == 111 or die "$error\n";
    $ok ? 1 : 0;
};
python('fallback', $module) if !defined $connected && $@ eq "timed out\n";
fail('did not answer', $@ =~ s/\n\z//r) if !defined $connected;
python('fallback', $module) if !$connected;    # no socket there, or nobody listening on it

my $answer = '';
eval {
    local $SIG{ALRM} = sub { die "timed out\n" };
    alarm $answer_timeout;
    for (my $off = 0; $off < length $request;) {
        my $n = syswrite($s, $request, 65536, $off) // die "$!\n";
        $off += $n;
    }
    shutdown($s, 1);
    while (1) {
        my $n = sysread($s, $answer, 65536, length $answer) // die "$!\n";
        last if !$n;
    }
    alarm 0;
    1;
} or fail('did not answer', $@ =~ s/\n\z//r);

python('fallback', $module) if substr($answer, 0, 9) eq "fallback\0";
if ($answer !~ /\A(\d+)\0(\d+)\0/) {
    my $shown = substr($answer, 0, 200) =~ s/\0/\\0/gr;
    fail('gave a broken answer', length $answer ? $shown : 'no answer');
}
my ($code, $stderr_length, $at) = ($1, $2, $+[0]);
print STDERR substr($answer, $at, $stderr_length);
print STDOUT substr($answer, $at + $stderr_length);
exit $code;
