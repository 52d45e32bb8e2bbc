"""A minimal SSH server for cli/tests/remote.rs: what `DOCKER_HOST=ssh://…`
needs of a remote host and nothing more.

It accepts any user without a password or key ("none" authentication: it
listens only on the test's private address), and runs each `exec` request as
a shell command with the channel as its stdin and stdout: bollard (through the
system ssh client) runs `docker system dial-stdio` to reach the engine named
by this server's DOCKER_HOST. Usage: sshd.py ADDRESS PORT HOST_KEY_FILE.
"""

import os
import socket
import subprocess
import sys
import threading

import paramiko


class Server(paramiko.ServerInterface):
    def __init__(self):
        self.command = None
        self.ready = threading.Event()

    def get_allowed_auths(self, username):
        return "none"

    def check_auth_none(self, username):
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=run, args=(channel, command), daemon=True).start()
        return True


def pump(source, sink, close):
    try:
        while True:
            data = source(65536)
            if not data:
                break
            sink(data)
    except (OSError, EOFError):
        pass
    finally:
        close()


def run(channel, command):
    # Unbuffered both ways: dial-stdio answers only what it has been sent.
    proc = subprocess.Popen(
        command.decode(),
        shell=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    to_proc = threading.Thread(
        target=pump,
        args=(channel.recv, proc.stdin.write, proc.stdin.close),
        daemon=True,
    )
    to_proc.start()
    out = proc.stdout.fileno()
    pump(lambda n: os.read(out, n), channel.sendall, channel.shutdown_write)
    code = proc.wait()
    channel.send_exit_status(code)
    channel.close()


def serve(conn, key):
    transport = paramiko.Transport(conn)
    transport.add_server_key(key)
    transport.start_server(server=Server())
    # A channel closes when its last reference goes: keep every one accepted.
    channels = []
    while transport.is_active():
        channel = transport.accept(timeout=1)
        if channel is not None:
            channels.append(channel)


def main():
    address, port, key_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    key = paramiko.Ed25519Key.from_private_key_file(key_file)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(16)
    print("listening", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, key), daemon=True).start()


if __name__ == "__main__":
    main()
