namespace WeakSeg.Data;

/// <summary>The PASCAL VOC colour palette (index i → RGB by the bit-interleaving rule of the VOC devkit); 255 is the ignore colour (224,224,192).</summary>
public static class VocPalette
{
    /// <summary>768 bytes: RGB for indices 0..255.</summary>
    public static byte[] Rgb { get; } = Build();

    static byte[] Build()
    {
        var p = new byte[256 * 3];
        for (int i = 0; i < 256; i++)
        {
            int r = 0, g = 0, b = 0, c = i;
            for (int j = 0; j < 8; j++)
            {
                r |= ((c >> 0) & 1) << (7 - j);
                g |= ((c >> 1) & 1) << (7 - j);
                b |= ((c >> 2) & 1) << (7 - j);
                c >>= 3;
            }
            p[3 * i] = (byte)r; p[3 * i + 1] = (byte)g; p[3 * i + 2] = (byte)b;
        }
        return p;
    }

    public static (byte R, byte G, byte B) Color(int index) => (Rgb[3 * index], Rgb[3 * index + 1], Rgb[3 * index + 2]);

    /// <summary>Index of an exact palette colour, or -1.</summary>
    public static int IndexOf(byte r, byte g, byte b)
    {
        for (int i = 0; i < 256; i++)
            if (Rgb[3 * i] == r && Rgb[3 * i + 1] == g && Rgb[3 * i + 2] == b) return i;
        return -1;
    }
}
