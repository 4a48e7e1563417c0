// The suite's own vagrant box, made from its guest image (lib/providers/image.ts) when no
// box is configured: a tar.gz of box.img (the qcow2), metadata.json, the kernel
// and initrd, the guest's ssh key, and a box Vagrantfile that boots the kernel
// directly and logs in as root (the guest has no sudo).
//
//   await writeBox(img, '/tmp/x/ups.box'); write boxCatalog(boxVersion(img.manifest), '/tmp/x/ups.box')
//   to /tmp/x/ups.json; vagrant box add /tmp/x/ups.json   -> box ups/bookworm, that version
import { pathToFileURL } from 'node:url';
import { $, fs, path } from 'zx';
import type { GuestImage, ImageManifest } from './image.ts';
import { KERNEL_APPEND } from './accel.ts';

const GiB = 1024 ** 3;

/** The suite's box; each build of the guest image is a new version of it (and a new libvirt base volume). */
export const BOX_NAME = 'ups/bookworm';

/** Box version of one image build, e.g. "1.20261125120612" for image_version 1 built at 2026-11-25T12:06:12Z. */
export function boxVersion(manifest: Pick<ImageManifest, 'image_version' | 'built_at'>): string {
  return `${manifest.image_version}.${manifest.built_at.replace(/\D/g, '').slice(0, 14)}`;
}

/** A box catalog (what `vagrant box add` reads to learn a box's name and version) for one local box file. */
export function boxCatalog(version: string, boxFile: string): string {
  return `${JSON.stringify({
    name: BOX_NAME,
    description: 'upload-perf-suite guest: Debian bookworm, direct kernel boot',
    versions: [{ version, providers: [{ name: 'libvirt', url: pathToFileURL(boxFile).href }] }],
  }, null, 2)}\n`;
}

/** metadata.json of a libvirt box; vagrant-libvirt wants the virtual size in whole GiB. */
export function boxMetadata(diskVirtualBytes: number): { provider: 'libvirt'; format: 'qcow2'; virtual_size: number } {
  return { provider: 'libvirt', format: 'qcow2', virtual_size: Math.ceil(diskVirtualBytes / GiB) };
}

/** The box's own Vagrantfile; paths resolve inside the unpacked box. */
export function boxVagrantfile(cmdLine = KERNEL_APPEND): string {
  return `# upload-perf-suite guest box: direct kernel boot, root over ssh with the suite's key, no sudo.
box = File.dirname(__FILE__)
Vagrant.configure("2") do |config|
  config.ssh.username = "root"
  config.ssh.private_key_path = File.join(box, "id_ed25519")
  config.ssh.insert_key = false
  config.ssh.sudo_command = "%c"
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.join(box, "vmlinux")
    lv.initrd = File.join(box, "initrd.img")
    lv.cmd_line = ${JSON.stringify(cmdLine)}
  end
end
`;
}

/** Packs the image into a box file at `boxFile`; the staging folder beside it is removed after. */
export async function writeBox(img: GuestImage, boxFile: string): Promise<string> {
  const stage = await fs.mkdtemp(path.join(path.dirname(boxFile), '.box-'));
  try {
    await fs.writeFile(path.join(stage, 'metadata.json'), `${JSON.stringify(boxMetadata(img.manifest.disk_virtual_bytes))}\n`);
    await fs.writeFile(path.join(stage, 'Vagrantfile'), boxVagrantfile());
    // Links keep the 230 MB disk from being copied once more before tar reads it.
    await fs.symlink(img.disk, path.join(stage, 'box.img'));
    await fs.symlink(img.kernel, path.join(stage, 'vmlinux'));
    await fs.symlink(img.initrd, path.join(stage, 'initrd.img'));
    await fs.copyFile(img.sshKey, path.join(stage, 'id_ed25519'));
    await fs.chmod(path.join(stage, 'id_ed25519'), 0o600);
    // The qcow2 is compressed already: gzip -1 only wraps it.
    await $({ quiet: true, cwd: stage })`tar --dereference --use-compress-program=${'gzip -1'} -cf ${boxFile} metadata.json Vagrantfile box.img vmlinux initrd.img id_ed25519`;
    return boxFile;
  } finally {
    await fs.remove(stage);
  }
}
