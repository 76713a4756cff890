namespace WeakSeg.Data.Coco;

/// <summary>
/// COCO run-length encoded masks. Runs cover the image in column-major order (down each column, then the next column) and
/// alternate 0-runs and 1-runs, starting with a 0-run (possibly of length 0). The compressed string form (pycocotools)
/// stores each count in characters '0'..'o' (value c − 48), 5 payload bits per character, least significant group first;
/// bit 0x20 means "more characters follow"; in the last character bit 0x10 is the sign (the value is sign-extended);
/// from the fourth count on, the stored value is the difference to the count two places earlier.
/// </summary>
public static class CocoRle
{
    /// <summary>Decodes a compressed counts string into run lengths. Throws <see cref="FormatException"/> on malformed input.</summary>
    public static long[] DecodeString(string counts)
    {
        var result = new List<long>();
        int p = 0;
        while (p < counts.Length)
        {
            long value = 0;
            int shift = 0;
            while (true)
            {
                if (p >= counts.Length) throw new FormatException("RLE string ends in the middle of a count");
                int c = counts[p++] - 48;
                if (c < 0 || c > 63) throw new FormatException($"character '{counts[p - 1]}' is not an RLE digit");
                value |= (long)(c & 0x1F) << shift;
                shift += 5;
                if ((c & 0x20) != 0)
                {
                    if (shift > 55) throw new FormatException("RLE count is too long");
                    continue;
                }
                if ((c & 0x10) != 0) value |= -1L << shift; // negative: sign-extend
                break;
            }
            if (result.Count > 2) value += result[^2];
            if (value < 0) throw new FormatException($"RLE count {result.Count} decodes to a negative run ({value})");
            result.Add(value);
        }
        return result.ToArray();
    }

    /// <summary>Encodes run lengths as a compressed counts string (inverse of <see cref="DecodeString"/>).</summary>
    public static string EncodeString(IReadOnlyList<long> runs)
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < runs.Count; i++)
        {
            long x = i > 2 ? runs[i] - runs[i - 2] : runs[i];
            while (true)
            {
                int c = (int)(x & 0x1F);
                x >>= 5;
                bool done = (c & 0x10) != 0 ? x == -1 : x == 0;
                if (!done) c |= 0x20;
                sb.Append((char)(c + 48));
                if (done) break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Sets every pixel covered by a 1-run to <paramref name="value"/>. Throws <see cref="FormatException"/> when the runs exceed the image.</summary>
    public static void Paint(IReadOnlyList<long> runs, LabelMap target, byte value)
    {
        long total = (long)target.Width * target.Height, pos = 0;
        int h = target.Height, w = target.Width;
        var labels = target.Labels;
        for (int i = 0; i < runs.Count; i++)
        {
            long n = runs[i];
            if (n < 0 || pos + n > total) throw new FormatException($"RLE runs cover more than the {w}x{h} image");
            if ((i & 1) == 1)
            {
                for (long k = pos; k < pos + n; k++)
                {
                    int x = (int)(k / h), y = (int)(k % h);
                    labels[y * w + x] = value;
                }
            }
            pos += n;
        }
    }

    /// <summary>Run lengths of a row-major binary mask (for tests and tools), column-major, starting with a 0-run.</summary>
    public static long[] Encode(bool[] mask, int height, int width)
    {
        var runs = new List<long>();
        bool current = false;
        long run = 0;
        for (int x = 0; x < width; x++)
            for (int y = 0; y < height; y++)
            {
                bool v = mask[y * width + x];
                if (v != current) { runs.Add(run); run = 0; current = v; }
                run++;
            }
        runs.Add(run);
        return runs.ToArray();
    }
}
