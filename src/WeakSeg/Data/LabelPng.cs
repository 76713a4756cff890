using System.Buffers.Binary;
using System.IO.Compression;
using WeakSeg.IO;

namespace WeakSeg.Data;

/// <summary>
/// Reads and writes class-index masks as PNG. Writing produces a palette-indexed PNG with the VOC palette (what VOC's
/// SegmentationClass holds and what WSSS tools read back as indices). Reading accepts palette-indexed (the stored index is
/// the class, whatever the palette), 8-bit grayscale (SegmentationClassAug), and RGB/RGBA masks whose colours are exact
/// VOC palette colours. SkiaSharp cannot return palette indices, so the indexed/grayscale paths are decoded here.
/// </summary>
public static class LabelPng
{
    static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Writes <paramref name="mask"/> as a VOC-palette PNG, atomically (temp file + rename).</summary>
    public static void Write(string path, LabelMap mask)
    {
        AtomicFile.Write(path, fs => Encode(fs, mask));
    }

    public static byte[] Encode(LabelMap mask)
    {
        using var ms = new MemoryStream();
        Encode(ms, mask);
        return ms.ToArray();
    }

    public static void Encode(Stream output, LabelMap mask)
    {
        output.Write(Signature);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, mask.Width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), mask.Height);
        ihdr[8] = 8; ihdr[9] = 3; // 8-bit, palette
        WriteChunk(output, "IHDR", ihdr);
        WriteChunk(output, "PLTE", VocPalette.Rgb);
        using var raw = new MemoryStream();
        using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
        {
            var row = new byte[mask.Width + 1];
            for (int y = 0; y < mask.Height; y++)
            {
                row[0] = 0; // filter: none
                Array.Copy(mask.Labels, y * mask.Width, row, 1, mask.Width);
                z.Write(row);
            }
        }
        WriteChunk(output, "IDAT", raw.ToArray());
        WriteChunk(output, "IEND", []);
    }

    /// <summary>Reads a mask; errors name the file.</summary>
    public static LabelMap Read(string path)
    {
        byte[] bytes = InputFiles.ReadAllBytes(path, "mask");
        try { return Decode(bytes); }
        catch (InvalidDataException e) { throw WeakSegException.ForFile(path, "corrupt or unsupported mask PNG: " + e.Message); }
    }

    /// <summary>Decodes PNG bytes to indices. Throws <see cref="InvalidDataException"/> on malformed input.</summary>
    public static LabelMap Decode(ReadOnlySpan<byte> png)
    {
        if (png.Length < 8 || !png[..8].SequenceEqual(Signature)) throw new InvalidDataException("not a PNG file");
        int pos = 8, width = 0, height = 0, depth = 0, colorType = -1, interlace = 0;
        byte[]? palette = null;
        using var idat = new MemoryStream();
        bool sawEnd = false;
        while (pos + 8 <= png.Length)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(png[pos..]);
            string type = System.Text.Encoding.ASCII.GetString(png.Slice(pos + 4, 4));
            if (len < 0 || pos + 12 + (long)len > png.Length) throw new InvalidDataException($"chunk {type} is truncated");
            var data = png.Slice(pos + 8, len);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + len)..]);
            if (crc != Crc32(png.Slice(pos + 4, 4 + len))) throw new InvalidDataException($"chunk {type} has a bad CRC");
            switch (type)
            {
                case "IHDR":
                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    depth = data[8]; colorType = data[9]; interlace = data[12];
                    break;
                case "PLTE": palette = data.ToArray(); break;
                case "IDAT": idat.Write(data); break;
                case "IEND": sawEnd = true; break;
            }
            pos += 12 + len;
            if (sawEnd) break;
        }
        if (width <= 0 || height <= 0) throw new InvalidDataException("missing or invalid IHDR");
        if (InputLimits.PixelProblem(width, height) is { } tooLarge) throw new InvalidDataException("the header " + tooLarge);
        if (!sawEnd) throw new InvalidDataException("file is truncated (no IEND chunk)");
        if (interlace != 0) throw new InvalidDataException("interlaced PNG masks are not supported");
        int channels = colorType switch { 0 => 1, 3 => 1, 2 => 3, 6 => 4, 4 => 2, _ => throw new InvalidDataException($"colour type {colorType} unsupported") };
        if (depth != 8 && !(depth is 1 or 2 or 4 && colorType is 0 or 3))
            throw new InvalidDataException($"bit depth {depth} unsupported for colour type {colorType}");
        int bitsPerPixel = depth * channels;
        int stride = (width * bitsPerPixel + 7) / 8;
        int bpp = Math.Max(1, bitsPerPixel / 8);
        var raw = new byte[(long)(stride + 1) * height];
        idat.Position = 0;
        using (var z = new ZLibStream(idat, CompressionMode.Decompress))
        {
            int read = 0;
            try
            {
                while (read < raw.Length)
                {
                    int n = z.Read(raw, read, raw.Length - read);
                    if (n == 0) break;
                    read += n;
                }
            }
            catch (InvalidDataException) { throw new InvalidDataException("image data is corrupt"); }
            if (read < raw.Length) throw new InvalidDataException("image data is truncated");
        }
        var cur = new byte[stride];
        var prev = new byte[stride];
        var labels = new byte[width * height];
        for (int y = 0; y < height; y++)
        {
            int filter = raw[y * (stride + 1)];
            Array.Copy(raw, y * (stride + 1) + 1, cur, 0, stride);
            Unfilter(filter, cur, prev, bpp);
            for (int x = 0; x < width; x++)
            {
                int v;
                if (depth == 8)
                {
                    int o = x * channels;
                    v = channels switch
                    {
                        1 => cur[o],
                        2 => cur[o], // gray+alpha: the gray value
                        _ => RgbToIndex(cur[o], cur[o + 1], cur[o + 2], x, y),
                    };
                }
                else
                {
                    int bit = x * depth;
                    v = (cur[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
                }
                if (colorType == 3 && palette != null && v >= palette.Length / 3)
                    throw new InvalidDataException($"pixel ({x},{y}) uses palette entry {v} beyond the {palette.Length / 3}-entry palette");
                labels[y * width + x] = (byte)v;
            }
            (cur, prev) = (prev, cur);
        }
        return new LabelMap(width, height, labels);
    }

    static int RgbToIndex(byte r, byte g, byte b, int x, int y)
    {
        int i = VocPalette.IndexOf(r, g, b);
        if (i < 0) throw new InvalidDataException($"RGB mask colour ({r},{g},{b}) at pixel ({x},{y}) is not a VOC palette colour");
        return i;
    }

    static void Unfilter(int filter, byte[] cur, byte[] prev, int bpp)
    {
        switch (filter)
        {
            case 0: break;
            case 1: for (int i = bpp; i < cur.Length; i++) cur[i] += cur[i - bpp]; break;
            case 2: for (int i = 0; i < cur.Length; i++) cur[i] += prev[i]; break;
            case 3:
                for (int i = 0; i < cur.Length; i++) cur[i] += (byte)(((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1);
                break;
            case 4:
                for (int i = 0; i < cur.Length; i++)
                {
                    int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
                    int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
                    cur[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                }
                break;
            default: throw new InvalidDataException($"unknown row filter {filter}");
        }
    }

    static void WriteChunk(Stream s, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> head = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(head, data.Length);
        System.Text.Encoding.ASCII.GetBytes(type, head[4..]);
        s.Write(head);
        s.Write(data);
        var crcInput = new byte[4 + data.Length];
        head[4..].CopyTo(crcInput);
        data.CopyTo(crcInput.AsSpan(4));
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(crcInput));
        s.Write(crc);
    }

    static readonly uint[] CrcTable = BuildCrcTable();
    static uint[] BuildCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    /// <summary>PNG's CRC-32 (ISO 3309).</summary>
    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
