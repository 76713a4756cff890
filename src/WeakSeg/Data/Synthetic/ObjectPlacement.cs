namespace WeakSeg.Data.Synthetic;

/// <summary>One object instance in an image: its class, outline, surface and pose (centre and half-extent in pixels).</summary>
public sealed class ObjectPlacement
{
    public int ClassIndex { get; }
    public ObjectShape Shape { get; }
    public ObjectTexture Texture { get; }
    public double CentreX { get; }
    public double CentreY { get; }
    /// <summary>Half-extent in pixels (the unit of the shape's local coordinates).</summary>
    public double Scale { get; }
    public double RotationRadians { get; }
    /// <summary>Stretch of the local u axis (v is divided by it), in [0.8, 1.25].</summary>
    public double Aspect { get; }
    public bool Mirrored { get; }

    readonly double _cos, _sin;

    public ObjectPlacement(int classIndex, ObjectShape shape, ObjectTexture texture, double centreX, double centreY, double scale,
                           double rotationRadians, double aspect, bool mirrored)
    {
        ClassIndex = classIndex; Shape = shape; Texture = texture; CentreX = centreX; CentreY = centreY; Scale = scale;
        RotationRadians = rotationRadians; Aspect = aspect; Mirrored = mirrored;
        _cos = Math.Cos(rotationRadians); _sin = Math.Sin(rotationRadians);
        double reach = 1.5 * scale * Math.Max(aspect, 1 / aspect);
        MinX = centreX - reach; MaxX = centreX + reach; MinY = centreY - reach; MaxY = centreY + reach;
    }

    /// <summary>Conservative bounding box in pixel coordinates.</summary>
    public double MinX { get; }
    public double MaxX { get; }
    public double MinY { get; }
    public double MaxY { get; }

    /// <summary>Image point (pixel coordinates, continuous) → object-local (u, v).</summary>
    public (double U, double V) ToLocal(double x, double y)
    {
        double dx = x - CentreX, dy = y - CentreY;
        double u = (dx * _cos + dy * _sin) / (Scale * Aspect);
        double v = (-dx * _sin + dy * _cos) * Aspect / Scale;
        return (Mirrored ? -u : u, v);
    }

    public bool Covers(double x, double y)
    {
        if (x < MinX || x > MaxX || y < MinY || y > MaxY) return false;
        var (u, v) = ToLocal(x, y);
        return Shape.Inside(u, v);
    }

    /// <summary>Surface colour at image point (x, y) (only meaningful where <see cref="Covers"/> is true).</summary>
    public Rgb ColorAt(double x, double y)
    {
        var (u, v) = ToLocal(x, y);
        return Texture.ColorAt(u, v);
    }
}
