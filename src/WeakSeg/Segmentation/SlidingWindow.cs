using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Segmentation;

/// <summary>
/// Sliding-window inference (Segmenter): the image is padded at the bottom/right with zeros (the mean colour after
/// normalisation) up to at least one window, covered by windows of side <c>crop</c> with the given stride (the last window
/// of a row/column is shifted back to end at the border), each window's logits are added into place, and the sum is divided
/// by the number of windows covering each pixel. The padding is cropped away at the end.
/// </summary>
public static class SlidingWindow
{
    /// <summary>Window start offsets along an axis of <paramref name="length"/> pixels: 0, stride, 2·stride, … and finally length − crop
    /// (a single 0 when length ≤ crop). Every pixel is covered.</summary>
    public static int[] Starts(int length, int crop, int stride)
    {
        if (crop < 1 || stride < 1) throw new ArgumentOutOfRangeException(crop < 1 ? nameof(crop) : nameof(stride));
        if (length <= crop) return [0];
        var starts = new List<int>();
        for (int s = 0; ; s += stride)
        {
            if (s + crop >= length) { starts.Add(length - crop); break; }
            starts.Add(s);
        }
        return starts.Distinct().ToArray();
    }

    /// <summary>How many windows cover each pixel of an H×W image ([H·W], row-major).</summary>
    public static int[] CoverageCounts(int height, int width, int crop, int stride)
    {
        int ph = Math.Max(height, crop), pw = Math.Max(width, crop);
        var counts = new int[ph * pw];
        foreach (var y0 in Starts(ph, crop, stride))
            foreach (var x0 in Starts(pw, crop, stride))
                for (int y = y0; y < y0 + crop; y++)
                    for (int x = x0; x < x0 + crop; x++) counts[y * pw + x]++;
        var result = new int[height * width];
        for (int y = 0; y < height; y++) Array.Copy(counts, y * pw, result, y * width, width);
        return result;
    }

    /// <summary>
    /// Averaged window logits for <paramref name="image"/> [1, 3, H, W]: returns [1, C, H, W]. <paramref name="windowLogits"/> maps a
    /// batch of windows [n, 3, crop, crop] to [n, C, crop, crop]; at most <paramref name="maxBatch"/> windows are run at once.
    /// </summary>
    public static Tensor Logits(Tensor image, int crop, int stride, Func<Tensor, Tensor> windowLogits, int maxBatch = 4)
    {
        if (image.dim() != 4 || image.shape[0] != 1) throw new ArgumentException($"expected one image [1, 3, H, W]; got [{string.Join(", ", image.shape)}]");
        using var scope = torch.NewDisposeScope();
        int h = (int)image.shape[2], w = (int)image.shape[3];
        int ph = Math.Max(h, crop), pw = Math.Max(w, crop);
        var padded = ph == h && pw == w ? image : nn.functional.pad(image, new long[] { 0, pw - w, 0, ph - h });
        var windows = (from y0 in Starts(ph, crop, stride) from x0 in Starts(pw, crop, stride) select (Y: y0, X: x0)).ToArray();
        Tensor? sum = null;
        var count = torch.zeros(1, 1, ph, pw, dtype: image.dtype, device: image.device);
        for (int first = 0; first < windows.Length; first += Math.Max(1, maxBatch))
        {
            var chunk = windows.Skip(first).Take(Math.Max(1, maxBatch)).ToArray();
            var batch = torch.cat(chunk.Select(c => padded.narrow(2, c.Y, crop).narrow(3, c.X, crop)).ToArray(), 0);   // [n, 3, crop, crop]
            var logits = windowLogits(batch);                                                                         // [n, C, crop, crop]
            sum ??= torch.zeros(1, logits.shape[1], ph, pw, dtype: logits.dtype, device: logits.device);
            for (int i = 0; i < chunk.Length; i++)
            {
                sum.narrow(2, chunk[i].Y, crop).narrow(3, chunk[i].X, crop).add_(logits.narrow(0, i, 1));
                count.narrow(2, chunk[i].Y, crop).narrow(3, chunk[i].X, crop).add_(1);
            }
        }
        var mean = sum!.div(count);
        return mean.narrow(2, 0, h).narrow(3, 0, w).contiguous().MoveToOuterDisposeScope();
    }
}
