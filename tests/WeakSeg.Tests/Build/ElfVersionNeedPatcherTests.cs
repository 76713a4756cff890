using System.Text;
using WeakSeg.Build;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Build;

public class ElfVersionNeedPatcherTests
{
    /// <summary>
    /// A minimal ELF64 with a .dynstr and a .gnu.version_r holding two needs (libc: GLIBC_2.2.5; libstdc++: GLIBCXX_3.4.30,
    /// GLIBCXX_3.4.32), laid out as the linker does. Returns the bytes and the file offsets of each Vernaux flags field.
    /// </summary>
    internal static (byte[] Elf, int[] FlagOffsets) MakeElf()
    {
        var dynstr = new List<byte> { 0 };
        int Add(string s) { int at = dynstr.Count; dynstr.AddRange(Encoding.ASCII.GetBytes(s)); dynstr.Add(0); return at; }
        int libc = Add("libc.so.6"), g225 = Add("GLIBC_2.2.5"), libstd = Add("libstdc++.so.6"), g30 = Add("GLIBCXX_3.4.30"), g32 = Add("GLIBCXX_3.4.32");
        var shstr = new List<byte> { 0 };
        int ShAdd(string s) { int at = shstr.Count; shstr.AddRange(Encoding.ASCII.GetBytes(s)); shstr.Add(0); return at; }
        int nDynstr = ShAdd(".dynstr"), nVerneed = ShAdd(".gnu.version_r"), nShstr = ShAdd(".shstrtab");

        var verneed = new byte[16 + 16 + 16 + 16 + 16];
        void W16(byte[] b, int o, int v) { b[o] = (byte)v; b[o + 1] = (byte)(v >> 8); }
        void W32(byte[] b, int o, long v) { for (int i = 0; i < 4; i++) b[o + i] = (byte)(v >> (8 * i)); }
        void W64(byte[] b, int o, long v) { for (int i = 0; i < 8; i++) b[o + i] = (byte)(v >> (8 * i)); }
        // need 0: libc, 1 aux at +16, next need at +32
        W16(verneed, 0, 1); W16(verneed, 2, 1); W32(verneed, 4, libc); W32(verneed, 8, 16); W32(verneed, 12, 32);
        W32(verneed, 16 + 8, g225); W32(verneed, 16 + 12, 0);
        // need 1: libstdc++, 2 aux at +16
        W16(verneed, 32, 1); W16(verneed, 34, 2); W32(verneed, 36, libstd); W32(verneed, 40, 16); W32(verneed, 44, 0);
        W32(verneed, 48 + 8, g30); W32(verneed, 48 + 12, 16);
        W32(verneed, 64 + 8, g32); W32(verneed, 64 + 12, 0);

        int dynstrOff = 64, verneedOff = dynstrOff + dynstr.Count, shstrOff = verneedOff + verneed.Length;
        int shoff = (shstrOff + shstr.Count + 7) / 8 * 8;
        var elf = new byte[shoff + 4 * 64];
        elf[0] = 0x7f; elf[1] = (byte)'E'; elf[2] = (byte)'L'; elf[3] = (byte)'F'; elf[4] = 2; elf[5] = 1; elf[6] = 1;
        W64(elf, 0x28, shoff); W16(elf, 0x3A, 64); W16(elf, 0x3C, 4); W16(elf, 0x3E, 3);
        dynstr.CopyTo(elf, dynstrOff); verneed.CopyTo(elf, verneedOff); shstr.CopyTo(elf, shstrOff);
        void Sh(int i, int name, uint type, int off, int size, int link, int info)
        {
            int o = shoff + 64 * i;
            W32(elf, o, name); W32(elf, o + 4, type); W64(elf, o + 24, off); W64(elf, o + 32, size); W32(elf, o + 40, link); W32(elf, o + 44, info);
        }
        Sh(1, nDynstr, 3, dynstrOff, dynstr.Count, 0, 0);
        Sh(2, nVerneed, 0x6ffffffe, verneedOff, verneed.Length, 1, 2);
        Sh(3, nShstr, 3, shstrOff, shstr.Count, 0, 0);
        return (elf, new[] { verneedOff + 16 + 4, verneedOff + 48 + 4, verneedOff + 64 + 4 });
    }

    [Fact]
    public void Marks_only_the_named_need_weak_and_is_idempotent()
    {
        var (elf, flags) = MakeElf();
        var before = (byte[])elf.Clone();
        Assert.Equal(VersionNeedPatchResult.Patched, ElfVersionNeedPatcher.MarkWeak(elf, "GLIBCXX_3.4.32"));
        Assert.Equal(2, elf[flags[2]]);               // VER_FLG_WEAK on GLIBCXX_3.4.32
        Assert.Equal(0, elf[flags[0]]);               // GLIBC_2.2.5 untouched
        Assert.Equal(0, elf[flags[1]]);               // GLIBCXX_3.4.30 untouched
        int diff = 0; for (int i = 0; i < elf.Length; i++) if (elf[i] != before[i]) diff++;
        Assert.Equal(1, diff);                        // exactly one byte changed
        var once = (byte[])elf.Clone();
        Assert.Equal(VersionNeedPatchResult.AlreadyWeak, ElfVersionNeedPatcher.MarkWeak(elf, "GLIBCXX_3.4.32"));
        Assert.Equal(once, elf);
        Assert.Equal(VersionNeedPatchResult.NotNeeded, ElfVersionNeedPatcher.MarkWeak(elf, "GLIBCXX_3.4.99"));
    }

    [Fact]
    public void Rejects_non_elf_and_out_of_range_tables()
    {
        Assert.Throws<InvalidDataException>(() => ElfVersionNeedPatcher.MarkWeak(new byte[100], "GLIBCXX_3.4.32"));
        var (elf, _) = MakeElf();
        elf[0x28] = 0xff; elf[0x29] = 0xff; // section header offset past the end
        Assert.Throws<InvalidDataException>(() => ElfVersionNeedPatcher.MarkWeak(elf, "GLIBCXX_3.4.32"));
    }

    [Fact]
    public void PatchFile_writes_atomically_and_detects_provided_version()
    {
        using var dir = TestPaths.NewTempDir();
        var (elf, flags) = MakeElf();
        var path = dir.File("libLibTorchSharp.so");
        File.WriteAllBytes(path, elf);
        Assert.Equal(VersionNeedPatchResult.Patched, ElfVersionNeedPatcher.PatchFile(path, "GLIBCXX_3.4.32"));
        Assert.Equal(2, File.ReadAllBytes(path)[flags[2]]);
        Assert.Single(Directory.GetFiles(dir.Path)); // no temp file left behind
        Assert.Equal(VersionNeedPatchResult.AlreadyWeak, ElfVersionNeedPatcher.PatchFile(path, "GLIBCXX_3.4.32"));
        // The synthetic file "provides" every string in its dynstr, including the two GLIBCXX names.
        Assert.True(ElfVersionNeedPatcher.LibraryProvidesVersion(path, "GLIBCXX_3.4.30"));
        Assert.False(ElfVersionNeedPatcher.LibraryProvidesVersion(path, "GLIBCXX_3.4.3")); // prefix is not a match
    }

    [Fact]
    public void Build_output_copy_is_patched_exactly_when_the_system_lacks_the_version()
    {
        var copy = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!OperatingSystem.IsLinux() || !File.Exists(copy)) return;
        var sys = ElfVersionNeedPatcher.FindSystemLibStdCxx();
        bool systemHas = sys != null && ElfVersionNeedPatcher.LibraryProvidesVersion(sys, ElfVersionNeedPatcher.GlibcxxVersion);
        var bytes = File.ReadAllBytes(copy);
        var expected = systemHas ? VersionNeedPatchResult.Patched : VersionNeedPatchResult.AlreadyWeak;
        Assert.Equal(expected, ElfVersionNeedPatcher.MarkWeak(bytes, ElfVersionNeedPatcher.GlibcxxVersion));
    }
}
