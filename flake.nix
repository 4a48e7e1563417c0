# Dev shell with every tool the suite shells out to: `nix develop`, then
# `npm ci && ./run-tests --quick`.
{
  description = "Upload performance suite for PicoShare";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.nodejs_20
            pkgs.curl
            pkgs.jq
            pkgs.go
            pkgs.gcc          # PicoShare links SQLite through cgo
            pkgs.git
            pkgs.qemu         # qemu-system-x86_64, qemu-img
            pkgs.debootstrap  # the guest image
            pkgs.e2fsprogs    # mkfs.ext4 -d
            pkgs.openssh
            pkgs.vagrant
            pkgs.libvirt      # virsh, libvirtd for vagrant-libvirt
          ];
        };
      });
    };
}
