// Marks one symbol-version need of an ELF64 shared library as weak (VER_FLG_WEAK).
//
// Why: TorchSharp 0.107's libLibTorchSharp.so declares a need for GLIBCXX_3.4.32 (GCC 13). Debian 12 and
// Ubuntu 22.04 ship an older libstdc++ without it, so the dynamic loader refuses the library. The only symbol
// bound to that version, std::ios_base_library_init(), is referenced but never called, so a weak need lets the
// library load and run correctly. See README "Troubleshooting".
//
// This file is compiled twice: into an MSBuild inline task (build/LibTorchLoadFix.targets), which patches the
// build's output copies, and into the test project (with WEAKSEG_NO_MSBUILD_TASK defined), which tests the logic.
#nullable enable
using System;
using System.IO;
using System.Text;

namespace WeakSeg.Build
{
    public enum VersionNeedPatchResult { Patched, AlreadyWeak, NotNeeded }

    public static class ElfVersionNeedPatcher
    {
        public const string GlibcxxVersion = "GLIBCXX_3.4.32";
        const uint ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlagWeak = 0x2;

        /// <summary>Sets VER_FLG_WEAK on every Vernaux entry named <paramref name="versionName"/>, in place.</summary>
        /// <exception cref="InvalidDataException">the bytes are not a little-endian ELF64 file, or its tables are out of range.</exception>
        public static VersionNeedPatchResult MarkWeak(byte[] elf, string versionName)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException("only little-endian ELF64 is supported");
            ulong shoff = U64(elf, 0x28);
            int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);
            if (shentsize < 64 || shoff + (ulong)shentsize * (ulong)shnum > (ulong)elf.Length)
                throw new InvalidDataException("section header table out of range");
            var found = false;
            var changed = false;
            for (int s = 0; s < shnum; s++)
            {
                int sh = checked((int)shoff + s * shentsize);
                if (U32(elf, sh + 4) != ShtGnuVerneed) continue;
                int secOff = Checked(elf, U64(elf, sh + 24), 0);
                int secSize = Checked(elf, U64(elf, sh + 32), 0);
                Checked(elf, (ulong)secOff + (ulong)secSize, 0);
                int link = (int)U32(elf, sh + 40);
                uint count = U32(elf, sh + 44);
                if (link >= shnum) throw new InvalidDataException("verneed string table index out of range");
                int strSh = checked((int)shoff + link * shentsize);
                int strOff = Checked(elf, U64(elf, strSh + 24), 0);
                int strSize = Checked(elf, U64(elf, strSh + 32), 0);
                Checked(elf, (ulong)strOff + (ulong)strSize, 0);

                int vn = secOff;
                for (uint i = 0; i < count; i++)
                {
                    Checked(elf, (ulong)vn + 16, 0);
                    int cnt = U16(elf, vn + 2);
                    int aux = vn + (int)U32(elf, vn + 8);
                    for (int a = 0; a < cnt; a++)
                    {
                        Checked(elf, (ulong)aux + 16, 0);
                        uint nameIdx = U32(elf, aux + 8);
                        if (nameIdx >= strSize) throw new InvalidDataException("version name offset out of range");
                        if (NameEquals(elf, strOff + (int)nameIdx, strOff + strSize, versionName))
                        {
                            found = true;
                            ushort flags = (ushort)U16(elf, aux + 4);
                            if ((flags & VerFlagWeak) == 0)
                            {
                                flags |= VerFlagWeak;
                                elf[aux + 4] = (byte)flags;
                                elf[aux + 5] = (byte)(flags >> 8);
                                changed = true;
                            }
                        }
                        uint next = U32(elf, aux + 12);
                        if (next == 0) break;
                        aux += (int)next;
                    }
                    uint vnNext = U32(elf, vn + 12);
                    if (vnNext == 0) break;
                    vn += (int)vnNext;
                }
            }
            return !found ? VersionNeedPatchResult.NotNeeded : changed ? VersionNeedPatchResult.Patched : VersionNeedPatchResult.AlreadyWeak;
        }

        /// <summary>Patches <paramref name="path"/> atomically (temp file + rename, which also breaks any hard link).</summary>
        public static VersionNeedPatchResult PatchFile(string path, string versionName)
        {
            var bytes = File.ReadAllBytes(path);
            var result = MarkWeak(bytes, versionName);
            if (result != VersionNeedPatchResult.Patched) return result;
            var tmp = path + ".weakseg-tmp";
            File.WriteAllBytes(tmp, bytes);
            File.Replace(tmp, path, null); // rename over the target
            return result;
        }

        /// <summary>True when the library file defines the version string (e.g. libstdc++ providing GLIBCXX_3.4.32).</summary>
        public static bool LibraryProvidesVersion(string libraryPath, string versionName)
        {
            var bytes = File.ReadAllBytes(libraryPath);
            var needle = Encoding.ASCII.GetBytes(versionName + "\0");
            for (int i = 0; i + needle.Length <= bytes.Length; i++)
            {
                int j = 0;
                while (j < needle.Length && bytes[i + j] == needle[j]) j++;
                if (j == needle.Length) return true;
            }
            return false;
        }

        /// <summary>The system's libstdc++.so.6, or null if none is found in the usual places.</summary>
        public static string? FindSystemLibStdCxx()
        {
            var dirs = new System.Collections.Generic.List<string>();
            var ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(ld)) dirs.AddRange(ld.Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries));
            dirs.AddRange(new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib" });
            foreach (var d in dirs)
            {
                var p = Path.Combine(d, "libstdc++.so.6");
                if (File.Exists(p)) return p;
            }
            return null;
        }

        static bool NameEquals(byte[] b, int at, int end, string name)
        {
            if (at + name.Length >= end) return false;
            for (int i = 0; i < name.Length; i++) if (b[at + i] != (byte)name[i]) return false;
            return b[at + name.Length] == 0;
        }

        static int Checked(byte[] b, ulong offset, int _)
        {
            if (offset > (ulong)b.Length) throw new InvalidDataException("offset out of range");
            return (int)offset;
        }

        static int U16(byte[] b, int o) => b[o] | (b[o + 1] << 8);
        static uint U32(byte[] b, int o) => (uint)(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24));
        static ulong U64(byte[] b, int o) => U32(b, o) | ((ulong)U32(b, o + 4) << 32);
    }

#if !WEAKSEG_NO_MSBUILD_TASK
    /// <summary>MSBuild task: patches the given output copies when the system libstdc++ lacks the version.</summary>
    public sealed class MarkGlibcxxNeedWeak : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        public override bool Execute()
        {
            if (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(System.Runtime.InteropServices.OSPlatform.Linux)) return true;
            var libstdcxx = ElfVersionNeedPatcher.FindSystemLibStdCxx();
            if (libstdcxx != null && ElfVersionNeedPatcher.LibraryProvidesVersion(libstdcxx, ElfVersionNeedPatcher.GlibcxxVersion))
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"{libstdcxx} provides {ElfVersionNeedPatcher.GlibcxxVersion}; no patch needed.");
                return true;
            }
            foreach (var item in Files)
            {
                var path = item.ItemSpec;
                if (!File.Exists(path)) continue;
                try
                {
                    var r = ElfVersionNeedPatcher.PatchFile(path, ElfVersionNeedPatcher.GlibcxxVersion);
                    if (r == VersionNeedPatchResult.Patched)
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High, $"WeakSeg: marked {ElfVersionNeedPatcher.GlibcxxVersion} need weak in {path} (system libstdc++ lacks it).");
                }
                catch (Exception e)
                {
                    Log.LogError($"WeakSeg: could not patch {path}: {e.Message}");
                    return false;
                }
            }
            return true;
        }
    }
#endif
}
