using WeakSeg.Data;
using WeakSeg.Evaluation;

namespace WeakSeg.PseudoLabels;

/// <summary>Band of maximum class scores [Low, High) whose pixels are labelled 255 (uncertain) in pseudo labels.</summary>
public readonly record struct UncertainBand(float Low, float High)
{
    public bool Contains(float score) => score >= Low && score < High;

    /// <summary>Parses "LOW:HIGH" (e.g. "0.25:0.7").</summary>
    public static UncertainBand Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 2
            || !float.TryParse(parts[0], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var low)
            || !float.TryParse(parts[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var high))
            throw new WeakSegException($"uncertain band '{text}' is not LOW:HIGH (e.g. 0.25:0.7)");
        var band = new UncertainBand(low, high);
        band.Validate();
        return band;
    }

    public void Validate()
    {
        if (!(Low >= 0 && High <= 1 && Low < High))
            throw new WeakSegException($"uncertain band [{Low}, {High}) must satisfy 0 ≤ LOW < HIGH ≤ 1");
    }
}

/// <summary>
/// Turns per-class score maps into a label map (the CAM protocol of MCTformer/WeakTr evaluation): the background score is the
/// constant <c>threshold</c>, each pixel takes the argmax over [background; class maps] mapped to class indices. So a pixel is
/// background when its maximum class score m ≤ threshold (background wins ties, as NumPy's argmax picks the first maximum), else the
/// class of the first plane reaching m. With an <see cref="UncertainBand"/>, pixels with Low ≤ m &lt; High become 255 instead
/// (ToCo's two-threshold pseudo labels use (low, high] — the boundary differs only at exact ties).
/// </summary>
public static class CamToLabel
{
    /// <summary>Background threshold of <c>weakseg pseudo</c> when none is given: ToCo's <c>--bkg_thre 0.5</c> default. The pipeline and
    /// the demo know the method and take its preset value instead (<see cref="Methods.IMethodConfig.PseudoLabelThreshold"/>).</summary>
    public const float DefaultThreshold = 0.5f;

    /// <summary>Per pixel: the maximum class score m (−∞ when there are no class planes) and the class index of the first plane
    /// reaching it (0 when there are none).</summary>
    public static (float[] MaxScore, byte[] ArgmaxClass) MaxOverClasses(CamMaps maps)
    {
        int n = maps.PlaneSize;
        var max = new float[n];
        var arg = new byte[n];
        Array.Fill(max, float.NegativeInfinity);
        for (int k = 0; k < maps.Classes.Length; k++)
        {
            var plane = maps.Plane(k);
            byte cls = checked((byte)maps.Classes[k]);
            for (int i = 0; i < n; i++)
                if (plane[i] > max[i]) { max[i] = plane[i]; arg[i] = cls; }
        }
        return (max, arg);
    }

    /// <summary>The label map of <paramref name="maps"/> at background <paramref name="threshold"/>.</summary>
    public static LabelMap Convert(CamMaps maps, float threshold, UncertainBand? uncertain = null)
    {
        uncertain?.Validate();
        var (max, arg) = MaxOverClasses(maps);
        var labels = new byte[max.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            float m = max[i];
            labels[i] = uncertain is { } band && band.Contains(m) ? LabelMap.Ignore : m > threshold ? arg[i] : (byte)0;
        }
        return new LabelMap(maps.Width, maps.Height, labels);
    }
}
